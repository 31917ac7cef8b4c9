"""The return flows Relais writes for a sender: the integration report (``report``) and status return flows
(``status``), both in ``schemas/xsd/relais-cppstatut.xsd``."""
