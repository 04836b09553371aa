#!/bin/sh
# accuracy.sh - intentd against its baselines, one table per dataset
# (docs/ACCURACY.md): the "cart in the last 30 minutes" heuristic, intentd
# with model.type logistic, intentd's MLP, and XGBoost trained offline with
# hindsight on the MLP run's exported features; all judged on the last 30%
# of event time.
#
# usage: bench/accuracy.sh [FILE[:FORMAT]]...
#   Datasets: the Taobao tail users (../shared/data, skipped if absent), the
#   simulator (2000 users, 3 days, seed 7), then every FILE given (format
#   guessed from the name unless :FORMAT is appended).
# env: BUILD (default build), PYTHON (default: the first python3 with
#   sklearn, /usr/bin/python3 included), KEEP=1 keeps the
#   exports in the printed folder.
# needs: python3-numpy python3-sklearn python3-xgboost (Debian).
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-build}
case $build in /*) ;; *) build=$here/$build ;; esac
intentd=$build/intentd
# Debian's python3-sklearn and python3-xgboost live in /usr/bin/python3,
# which another python3 first on PATH (pyenv, venv) may hide.
python=${PYTHON:-}
if [ -z "$python" ]; then
        for p in python3 /usr/bin/python3; do
                if "$p" -c 'import numpy, sklearn' 2>/dev/null; then
                        python=$p
                        break
                fi
        done
        python=${python:-python3}
fi
shared=${ITD_SHARED_DATA:-$here/../shared/data}

[ -x "$intentd" ] || { echo "accuracy.sh: no $intentd (make build)" >&2; exit 1; }
if ! "$python" -c 'import numpy, sklearn' 2>/dev/null; then
        echo "accuracy.sh: $python lacks numpy/sklearn" \
             "(apt-get install python3-sklearn python3-xgboost)" >&2
        exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/intentd-accuracy.XXXXXX")
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT

# run NAME INPUT FORMAT [--ci]
run() {
        name=$1 input=$2 format=$3 ci=${4:-}
        tag=$(echo "$name" | tr -c 'A-Za-z0-9\n' '_')
        for model in mlp logistic; do
                "$intentd" replay --input "$input" ${format:+--format "$format"} \
                        -o model.type=$model -o log.level=warning \
                        --export-features "$work/$tag.$model.csv" \
                        >"$work/$tag.$model.log" 2>&1 || {
                        echo "accuracy.sh: replay of $input failed:" >&2
                        cat "$work/$tag.$model.log" >&2
                        return 1
                }
        done
        "$python" "$here/bench/accuracy.py" --name "$name" $ci \
                "$work/$tag.mlp.csv" "$work/$tag.logistic.csv"
}

echo "# intentd accuracy, $(date -u +%Y-%m-%d) ($("$intentd" --version))"

taobao=$shared/taobao_userbehavior_tail_users/UserBehavior_tail10000.csv
if [ -f "$taobao" ]; then
        run "Taobao tail users (UserBehavior_tail10000.csv)" "$taobao" taobao --ci
else
        echo "\n(Taobao tail users: $taobao absent, skipped)"
fi

"$intentd" simulate --users 2000 --days 3 --seed 7 --out "$work/sim.jsonl"
run "simulator (2000 users, 3 days, seed 7)" "$work/sim.jsonl" jsonl --ci

for arg in "$@"; do
        file=${arg%:*} format=
        [ "$file" != "$arg" ] && format=${arg##*:}
        run "$(basename "$file")" "$file" "$format" --ci
done
[ "${KEEP:-0}" = 1 ] && echo "\nexports kept in $work"
exit 0
