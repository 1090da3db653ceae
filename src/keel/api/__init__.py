"""The REST + SSE surface. Only this package (and the console) imports FastAPI."""
