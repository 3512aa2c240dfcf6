"""marshmallow schemas, one module per resource, plus the fields they share.

They validate requests and document them in /openapi.json; a body field a schema
does not know is a 422 (marshmallow's RAISE, the default), and so is an unknown
query parameter (see app.errors.Blueprint).
"""
