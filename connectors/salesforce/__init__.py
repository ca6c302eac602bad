"""The Salesforce connector: config, client, auth, extraction, write-back and field setup."""
