"""The recipient directory: import (``importer``) of the platform's exports, in their formats (``formats``)."""
