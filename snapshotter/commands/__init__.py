"""One module per command (the older commands are in `commands_archive` and `commands_reading`)."""
