#!/bin/sh
# Prints the kernel command line parameter that makes the test guest
# (scripts/guest.sh) run COMMAND and power off:  quokka.cmd=<base64>
#   quokka ... -append "console=ttyS0 $(scripts/guest-cmd.sh 'uname -a')"
printf 'quokka.cmd=%s' "$(printf '%s' "$*" | base64 -w0)"
