package control

// FunctionEnvName is the variable bash imports the snapshot function from.
const FunctionEnvName = "BASH_FUNC_snapshot%%"

// FunctionBody is the `snapshot` bash function, as bash exports functions.
// It needs nothing but bash: it writes its arguments as a JSON array of
// strings to the request pipe, reads one reply line and evaluates it in the
// calling shell (`true`, `exit 0` or `exit 1`).
const FunctionBody = `() { local _tr_req='["snapshot"' _tr_a _tr_c _tr_reply;
 for _tr_a in "$@"; do
  _tr_a=${_tr_a//\\/\\\\}; _tr_a=${_tr_a//\"/\\\"};
  _tr_a=${_tr_a//$'\n'/\\n}; _tr_a=${_tr_a//$'\r'/\\r}; _tr_a=${_tr_a//$'\t'/\\t};
  if [[ $_tr_a == *[$'\x01'-$'\x1f']* ]]; then
   for _tr_c in 01 02 03 04 05 06 07 08 0b 0c 0e 0f 10 11 12 13 14 15 16 17 18 19 1a 1b 1c 1d 1e 1f; do
    printf -v _tr_reply "\x$_tr_c"; _tr_a=${_tr_a//$_tr_reply/\\u00$_tr_c};
   done;
  fi;
  _tr_req+=",\"$_tr_a\"";
 done;
 printf '%s]\n' "$_tr_req" >&"$_taskrunner_request_pipe" || return 1;
 IFS= read -r _tr_reply <&"$_taskrunner_response_pipe" || return 1;
 eval "$_tr_reply"
}`
