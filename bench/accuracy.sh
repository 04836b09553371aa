#!/bin/sh
# accuracy.sh - intentd against its baselines, two tables per dataset
# (docs/ACCURACY.md): intentd's MLP and its FTRL logistic baseline
# (progressive), the purchase-rate rule and the label-rate rule, all on the
# same examples, over all labelled events and over the last 30% of event
# time; 3 model seeds, mean and spread. The last-30% table adds the "cart in
# the last 30 minutes" heuristic and XGBoost trained offline with hindsight.
#
# Every replay runs one pipeline worker: replay's default is one per core,
# and more than one trains merged replicas (docs/ARCHITECTURE.md, Workers),
# so the numbers would depend on the machine's core count.
#
# usage: bench/accuracy.sh [FILE[:FORMAT]]...
#   Datasets: the Taobao tail users (../shared/data, skipped if absent), the
#   simulator (2000 users, 3 days, seed 7), then every FILE given (format
#   guessed from the name unless :FORMAT is appended).
# env: BUILD (default build), SEEDS (model.seed values, default "1 2 3"),
#   REPLAY_OPTS (more -o key=value for every replay, after the script's
#   own -o pipeline.workers=1, which they may override, e.g.
#   "-o model.negative.sample.rate=0.25"),
#   PYTHON (default: the first python3 with numpy, /usr/bin/python3
#   included), KEEP=1 keeps the reports and exports in the printed folder.
# needs: python3-numpy; python3-xgboost for the XGBoost row (Debian).
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-build}
case $build in /*) ;; *) build=$here/$build ;; esac
intentd=$build/intentd
seeds=${SEEDS:-1 2 3}
# Debian's python3-numpy and python3-xgboost live in /usr/bin/python3,
# which another python3 first on PATH (pyenv, venv) may hide.
python=${PYTHON:-}
if [ -z "$python" ]; then
        for p in python3 /usr/bin/python3; do
                if "$p" -c 'import numpy' 2>/dev/null; then
                        python=$p
                        break
                fi
        done
        python=${python:-python3}
fi
shared=${ITD_SHARED_DATA:-$here/../shared/data}

[ -x "$intentd" ] || { echo "accuracy.sh: no $intentd (make build)" >&2; exit 1; }
if ! "$python" -c 'import numpy' 2>/dev/null; then
        echo "accuracy.sh: $python lacks numpy" \
             "(apt-get install python3-numpy python3-xgboost)" >&2
        exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/intentd-accuracy.XXXXXX")
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT

# run NAME INPUT FORMAT
run() {
        name=$1 input=$2 format=$3
        tag=$(echo "$name" | tr -c 'A-Za-z0-9\n' '_')
        reports= export=
        for seed in $seeds; do
                out=$work/$tag.$seed
                # the first seed's run also exports its features
                ex=
                [ -z "$reports" ] && ex="--export-features $out.csv" \
                        && export=$out.csv
                "$intentd" replay --input "$input" ${format:+--format "$format"} \
                        --baseline logistic -o model.seed="$seed" \
                        -o pipeline.workers=1 ${REPLAY_OPTS:-} \
                        -o log.level=warning --report "$out.json" $ex \
                        >"$out.log" 2>&1 || {
                        echo "accuracy.sh: replay of $input failed:" >&2
                        cat "$out.log" >&2
                        return 1
                }
                reports="$reports $out.json"
        done
        "$python" "$here/bench/accuracy.py" --name "$name" \
                --seeds "$(echo $seeds | tr ' ' ,)" --export "$export" \
                $reports
}

echo "# intentd accuracy, $(date -u +%Y-%m-%d) ($("$intentd" --version))"

taobao=$shared/taobao_userbehavior_tail_users/UserBehavior_tail10000.csv
if [ -f "$taobao" ]; then
        run "Taobao tail users (UserBehavior_tail10000.csv)" "$taobao" taobao
else
        printf '\n(Taobao tail users: %s absent, skipped)\n' "$taobao"
fi

"$intentd" simulate --users 2000 --days 3 --seed 7 --out "$work/sim.jsonl"
run "simulator (2000 users, 3 days, seed 7)" "$work/sim.jsonl" jsonl

for arg in "$@"; do
        file=${arg%:*} format=
        [ "$file" != "$arg" ] && format=${arg##*:}
        run "$(basename "$file")" "$file" "$format"
done
[ "${KEEP:-0}" = 1 ] && printf '\nreports and exports kept in %s\n' "$work"
exit 0
