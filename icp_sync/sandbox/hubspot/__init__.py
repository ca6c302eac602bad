"""The HubSpot emulator: portal state, CRM v3 objects, search, properties, associations."""
