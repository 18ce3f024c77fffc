"""The roster's domain: students from 学籍, special groups, hardship recognition (no I/O)."""
