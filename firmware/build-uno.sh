#!/usr/bin/env bash
# Builds the sketch for the Uno (the Akeru is an Uno-compatible board) with
# arduino-mk, prints its flash and RAM use and fails when either passes 75%.
# Extra arguments go to make, e.g. USER_LIB_PATH=$HOME/Arduino/libraries to
# build against the real Snootlab library instead of the stand-in.
set -euo pipefail

firmware=$(cd "$(dirname "$0")" && pwd)
flash_bytes=32256  # 32 KiB less the 512-byte bootloader
ram_bytes=2048
limit_percent=75

if [ ! -f /usr/share/arduino/Arduino.mk ] || ! command -v avr-size >/dev/null; then
  echo "build-uno.sh: needs arduino-mk, arduino-core-avr, gcc-avr and avr-libc (apt-get install them)" >&2
  exit 2
fi

mkdir -p "$firmware/build"
log="$firmware/build/uno-build.log"
if ! make -C "$firmware/akeru_sensor" "$@" >"$log" 2>&1; then
  cat "$log" >&2
  echo "build-uno.sh: build failed (log: $log)" >&2
  exit 1
fi

elf="$firmware/build/uno/akeru_sensor.elf"
read -r text data bss _ < <(avr-size --format=berkeley "$elf" | tail -n 1)
flash=$((text + data))
ram=$((data + bss))

status=0
report() {  # name used available
  local percent
  percent=$(awk -v used="$2" -v available="$3" 'BEGIN { printf "%.1f", 100 * used / available }')
  printf '%-5s %6d of %5d bytes (%s%%)\n' "$1:" "$2" "$3" "$percent"
  if [ $(($2 * 100)) -gt $(($3 * limit_percent)) ]; then
    echo "build-uno.sh: $1 use is above ${limit_percent}%" >&2
    status=1
  fi
}
echo "built $elf"
report flash "$flash" "$flash_bytes"
report RAM "$ram" "$ram_bytes"
echo "(RAM counts globals only; the stack and the String heap share the rest)"
exit $status
