"""Request and response schemas, one module per area (`XCreate / XUpdate / XRead / XPage`)."""
