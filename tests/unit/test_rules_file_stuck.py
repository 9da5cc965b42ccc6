"""The decision that rules.yaml can no longer change (issue 32 item 2), from stat results."""

import os
import stat

from router.config.runtime import cannot_change


def stat_of(links: int, inode: int = 42) -> os.stat_result:
    # mode, ino, dev, nlink, uid, gid, size, atime, mtime, ctime
    return os.stat_result((stat.S_IFREG | 0o644, inode, 1, links, 0, 0, 120, 0, 0, 0))


def test_a_file_with_no_link_left_cannot_change() -> None:
    assert cannot_change(stat_of(links=0))


def test_a_linked_file_can() -> None:
    assert not cannot_change(stat_of(links=1))
    assert not cannot_change(stat_of(links=2))  # a hard link beside it


def test_a_missing_file_is_not_stuck() -> None:
    # Gone for a moment (an editor's rename) or for good: the path can show a new file.
    assert not cannot_change(None)
