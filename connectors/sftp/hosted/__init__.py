"""The SFTP server Relais hosts for its partners' drop zones: ``server`` (accounts, host key, the server
thread) and ``handler`` (what a partner may do inside its own drop zone)."""
