"""Print the per-epoch figures of a training run as a markdown table.

    python tools/summarize_run.py WORK_DIR
"""
import argparse

from mmreid_rcl.utils.run_logs import epoch_summary, format_epoch_table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('work_dir', help='the run\'s work dir')
    args = parser.parse_args(argv)
    print(format_epoch_table(epoch_summary(args.work_dir)))


if __name__ == '__main__':
    main()
