"""A local CRM: Salesforce and HubSpot API emulators over realistic synthetic data.

The sandbox imitates a real org as documented by the vendors, so that the connectors are
exercised through the real client libraries: Salesforce over TLS, HubSpot over HTTP, each on
its own port, with deterministic fault injection and per-endpoint API accounting.
"""
