"""The control plane: everything between an agent and the world it acts on."""
