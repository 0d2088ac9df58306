"""MAM Guard: guards a MyAnonamouse account's ratio with qBittorrent."""
