"""One module per file format, each with its reader and its writer."""
