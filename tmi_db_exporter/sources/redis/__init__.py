"""Redis source: what the operations guide checks by hand, as metrics named as redis_exporter
names them (so its dashboards and alerts keep working). One module per collector; source.py
wires them to one server.

Never in a metric or a log line: key names, command arguments (the slowlog's command label is
only ever a name that INFO commandstats lists), the new name of a renamed command, passwords.
"""
