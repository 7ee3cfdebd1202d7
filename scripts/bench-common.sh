# Sourced by the benchmarks: the tools they install, the checks of their settings and ports,
# the nginx that stands next to the api, and the clean-up when they end.

# install_missing TOOL...: installs from Debian (apt-get update once) the tools not on PATH,
# and python3-venv when Python cannot make a virtual environment.
install_missing() {
  local missing=() tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
  if ((${#missing[@]})); then
    echo "installing ${missing[*]} from Debian"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  fi
}

# whole_numbers NAME=VALUE...: exits with code 2, naming the setting, unless every VALUE is a
# whole number.
whole_numbers() {
  local setting
  for setting in "$@"; do
    [[ ${setting#*=} =~ ^[0-9]+$ ]] || { echo "error: $setting is not a whole number" >&2; exit 2; }
  done
}

# ports_free PORT...: exits with code 1, naming the port, if any of them is taken on 127.0.0.1.
ports_free() {
  local port
  for port in "$@"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "error: port $port is already in use (set BASE_PORT to move all $# ports)" >&2
      exit 1
    fi
  done
}

# write_nginx_conf DIR LISTEN_PORT PYTHON_PORT PROCESS_DIRECTIVES: writes DIR/nginx.conf for a
# reverse proxy on 127.0.0.1:LISTEN_PORT to the uvicorn on 127.0.0.1:PYTHON_PORT that does
# what the api does for a proxied route: HTTP/1.1 with pooled keepalive connections, the
# forwarding headers and a fresh request id each way, no access log. Keepalive request limits
# are lifted on both sides (nginx closes a connection after 1000 requests by default; hyper
# and uvicorn never do), and idle upstream connections close after 4 s, as the api's pool
# does, below uvicorn's 5 s keep-alive. PROCESS_DIRECTIVES (`worker_processes auto;`...) go
# first. Temporary files and the pid go under DIR.
write_nginx_conf() {
  local dir=$1 listen_port=$2 python_port=$3 process=$4
  mkdir -p "$dir/tmp"
  cat >"$dir/nginx.conf" <<CONF
$process
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events {
    worker_connections 1024;
}
http {
    access_log off;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    keepalive_requests 1000000;
    upstream python {
        server 127.0.0.1:$python_port;
        keepalive 64;
        keepalive_requests 1000000;
        keepalive_timeout 4s;
    }
    server {
        listen 127.0.0.1:$listen_port;
        location / {
            proxy_pass http://python;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$http_host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Host \$http_host;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Request-Id \$request_id;
            add_header X-Request-Id \$request_id always;
        }
    }
}
CONF
}

# clean_up_on_exit: on exit (Ctrl-C and SIGTERM included), stops every process in the
# caller's `pids` array, last started first (SIGTERM, then SIGKILL after 5 s), and removes
# the caller's `$work` folder.
clean_up_on_exit() {
  trap stop_all_and_remove_work EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

stop_all_and_remove_work() {
  local started i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
  done
  for started in "${pids[@]}"; do
    for ((i = 0; i < 50; i++)); do
      kill -0 "$started" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$started" 2>/dev/null || true
    wait "$started" 2>/dev/null || true
  done
  rm -rf "$work"
}
