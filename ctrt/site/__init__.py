"""The always-on site: a site file of cameras, track events to MQTT, metrics, health and the live view over HTTP, systemd readiness, watchdog and unit."""
