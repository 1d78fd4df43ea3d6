"""quiet_imports: the collector is paused inside the block, and what it built is frozen."""

import gc

from segexp.gc_tuning import quiet_imports


def test_collector_paused_inside_and_running_after():
    assert gc.isenabled()
    before = gc.get_freeze_count()
    try:
        with quiet_imports():
            assert not gc.isenabled()
            kept = [[i] for i in range(1000)]  # survivors of the block get frozen
        assert gc.isenabled()
        assert gc.get_freeze_count() >= before + len(kept)
    finally:
        gc.unfreeze()


def test_a_disabled_collector_stays_disabled():
    gc.disable()
    try:
        with quiet_imports():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
        gc.unfreeze()
