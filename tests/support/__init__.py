"""Test support code: real qBittorrent daemons, .torrent files, the MAM simulator glue."""
