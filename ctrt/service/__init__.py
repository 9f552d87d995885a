"""Running ctrt as a service: a site file of cameras, tracks to MQTT, systemd readiness and watchdog."""
