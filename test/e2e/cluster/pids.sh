# Sourced by up.sh and down.sh (after they set STATE): which pids are this state dir's own processes.
# A pid is ours when it is alive, not a zombie (nobody may reap the daemons once up.sh is gone), and its command line
# still names the state dir, so a reused pid is never signalled.
pid_is_ours() {
  local pid=$1 stat
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ "${stat%% *}" != Z ]] || return 1
  local cmdline
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ "$cmdline" == *"$STATE/"* ]]
}
