"""Prompts and evals: the prompt registry, datasets, scorers, judges, statistics, the promotion gate.

Modules (import what you need; nothing here is imported eagerly):

- `registry`      immutable prompt versions and movable aliases
- `dataset`       JSONL eval cases, content-hash versions, slices, cases from runs
- `jsonpath`      the `$.a.b[0]` path subset scorers use to pick fields
- `language`      offline language detection (en sv da no fi de fr cs sk)
- `scorers`       deterministic scorers (schema, equals, contains, regex, word_count, length,
                  json_path, language, latency, cost) and the pydantic-evals adapter
- `judges`        one LLM judge (a Pydantic AI agent with a rubric and a scale)
- `offline_judge` the deterministic, deliberately gameable `offline:judge` model
- `panel`         k judges → a consensus score per case
- `bootstrap`, `holm`, `kappa`  the statistics
- `tripwires`     kappa collapse, gaming, slice regression
- `gate_config`, `gate`, `report`  the rules, the verdict, the report model
- `render`        text / JSON / self-contained HTML
- `report_store`  persisted reports (`eval_reports`)
- `runner`        the `CaseRunner` contract the runtime implements
- `experiment`    `run_experiment(...)`: the one entry point
- `config`        the `evals:` section of agent.yaml
"""
