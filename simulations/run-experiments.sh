#!/usr/bin/env bash
# Runs the experiments of docs/experiments.md with the release `dispersy` binary and prints
# their headline figures (simulations/summarize.py).
#
# usage: simulations/run-experiments.sh [--record] [--seed N] [--set KEY=VALUE]... [NAME...]
#   NAME      dissemination dissemination-eager scale-1000 scale-100 churn challenged
#             challenged-load nat (default: all eight)
#   --record  also copy each run's headline plots and a summary into
#             simulations/results-recorded/NAME/
#   --seed N  replace the scenarios' seeds
#   --set     override a [nodes.config] entry of every scenario (e.g. verified_cache=false)
#
# Results go to simulations/results/exp-NAME/ (results.json and SVG plots). Wall time, CPU
# time and peak memory of each run are appended to simulations/results/timings.txt.
set -euo pipefail

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }

root="$(cd "$(dirname "$0")/.." && pwd)"
record=0
args=()
names=()
while [ $# -gt 0 ]; do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        --record) record=1 ;;
        --seed) args+=(--seed "$2"); shift ;;
        --set) args+=(--set "$2"); shift ;;
        -*) echo "unknown option $1" >&2; usage >&2; exit 2 ;;
        *) names+=("$1") ;;
    esac
    shift
done
[ ${#names[@]} -gt 0 ] || names=(dissemination dissemination-eager nat churn challenged challenged-load scale-1000 scale-100)

cd "$root"
cargo build --release -p dispersy-cli
bin="$root/target/release/dispersy"
mkdir -p simulations/results
for name in "${names[@]}"; do
    file="simulations/exp-$name.toml"
    [ -f "$file" ] || { echo "no $file" >&2; exit 2; }
    echo "== $name"
    start=$(date +%s)
    if command -v /usr/bin/time > /dev/null; then
        /usr/bin/time -f "$name ${args[*]:-}: %e s wall, %U s user, %M KB peak" \
            -a -o simulations/results/timings.txt "$bin" sim run "$file" "${args[@]}" || true
    else
        "$bin" sim run "$file" "${args[@]}" || true
        echo "$name ${args[*]:-}: $(( $(date +%s) - start )) s wall" >> simulations/results/timings.txt
    fi
    if [ "$record" = 1 ]; then
        out="simulations/results-recorded/$name"
        mkdir -p "$out"
        # Only the plots docs/experiments.md shows, to keep the repository small.
        case "$name" in
            dissemination*) plots=(dissemination) ;;
            nat) plots=(bytes) ;;
            scale-*) plots=(convergence bytes) ;;
            *) plots=(convergence) ;;
        esac
        for plot in "${plots[@]}"; do
            cp "simulations/results/exp-$name/$plot.svg" "$out/"
        done
        python3 simulations/summarize.py "simulations/results/exp-$name" > "$out/summary.md"
    fi
done
python3 simulations/summarize.py $(for n in "${names[@]}"; do echo "simulations/results/exp-$n"; done)
