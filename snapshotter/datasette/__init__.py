"""The Datasette side: the archive published read-only, with pages for auditors.

    plugin.py       Datasette's hooks: the pages' routes, robots.txt, the templates, and the
                    snapshot files and changes.db attached when a page asks for them
    catalogue.py    what the pages read: schools and snapshots (`archive.layout.list_archive`),
                    diff runs and their people counts (`archive.people.headline`, the CLI's own)
    descriptions.py what each table and column of a snapshot file holds (from the entity
                    model), handed to Datasette by the plugin's `get_metadata`
    app.py          the Datasette instance `snapshotter serve` runs, locked down
    metadata.yml    titles, descriptions and canned queries (the top-level `metadata.yml` is a
                    link to it: one source for both ways of starting the site)
    templates/      the pages

It reads the archive through the same functions as the CLI, never the provider's API.
"""
