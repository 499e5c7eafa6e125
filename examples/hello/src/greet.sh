echo "$GREETING (version $(cat /etc/hello-version), running as $(id -un) in $(pwd))"
