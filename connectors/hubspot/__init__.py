"""The HubSpot connector: config, client, auth, extraction, write-back and property setup."""
