"""Domain of the funding service: fiscal funds (资金管理) down the hierarchy and their execution."""
