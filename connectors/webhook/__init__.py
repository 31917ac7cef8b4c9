"""The ``webhook`` channel: the AFNOR flow service's events posted to the partners' callback URLs."""
