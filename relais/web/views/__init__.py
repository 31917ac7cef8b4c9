"""What the pages show, built from the store for the routes (relais/web/routes/): labels and findings'
messages, the landing and rejects pages' charts, the flow page, the audit log, the drop zones' waiting
files and the partners in qualification. Their words, in both languages, are relais/web/i18n.py."""
