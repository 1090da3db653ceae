"""One module per resource; handlers stay thin and call `keel.api.services`."""
