"""The inventory: one TOML file per host in ``hardware/``; inert data, validated at the edge."""
