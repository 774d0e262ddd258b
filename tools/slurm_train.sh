#!/usr/bin/env bash
# Usage: [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS="..."] \
#     tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py options]
# One task per GPU through srun; every task runs tools/train.py with
# --launcher slurm, which reads its rank from SLURM_PROCID, SLURM_NTASKS and
# SLURM_LOCALID and the master from the job's first node (PORT, default
# 29500, is the master port).
set -euo pipefail
if [ $# -lt 4 ]; then
    echo "usage: $0 PARTITION JOB_NAME CONFIG WORK_DIR [train.py options]" >&2
    exit 2
fi
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=$4
shift 4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-$((GPUS < 8 ? GPUS : 8))}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
export MASTER_PORT=${PORT:-${MASTER_PORT:-29500}}
DIR=$(cd "$(dirname "$0")" && pwd)
export PYTHONPATH="$DIR/..:${PYTHONPATH:-}"
# SRUN_ARGS is split into words on purpose.
# shellcheck disable=SC2086
srun --partition="$PARTITION" \
    --job-name="$JOB_NAME" \
    --gres=gpu:"$GPUS_PER_NODE" \
    --ntasks="$GPUS" \
    --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" \
    --kill-on-bad-exit=1 \
    $SRUN_ARGS \
    "${PYTHON:-python}" -u "$DIR/train.py" "$CONFIG" --work-dir="$WORK_DIR" \
    --launcher=slurm "$@"
