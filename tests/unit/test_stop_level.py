"""reconcile.judge_level: the venue's stop never loosens against the last stop the bot set."""

from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradecore.domain.model import Side
from tradecore.domain.reconcile import LevelVerdict, crossed, judge_level, tighter

prices = st.decimals(min_value="1", max_value="100000", places=2)
maybe = st.none() | prices


def test_a_tighter_stop_a_person_set_becomes_the_bots_level() -> None:
    verdict = judge_level(Side.LONG, Decimal("51740"), Decimal("51900"), Decimal("52000"))
    assert verdict is LevelVerdict.ADOPT


def test_a_looser_or_missing_stop_is_put_back_unless_the_mark_crossed_the_level() -> None:
    bot, mark = Decimal("51740"), Decimal("52000")
    assert judge_level(Side.LONG, bot, Decimal("45000"), mark) is LevelVerdict.RESTORE
    assert judge_level(Side.LONG, bot, None, mark) is LevelVerdict.RESTORE
    assert judge_level(Side.LONG, bot, None, Decimal("51500")) is LevelVerdict.CLOSE
    assert judge_level(Side.SHORT, Decimal("3050"), None, Decimal("3060")) is LevelVerdict.CLOSE


def test_without_a_level_of_its_own_the_bot_keeps_what_stands() -> None:
    assert judge_level(Side.LONG, None, Decimal("48000"), Decimal("50000")) is LevelVerdict.KEEP
    assert judge_level(Side.LONG, None, None, Decimal("50000")) is LevelVerdict.RESTORE


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(side=st.sampled_from(Side), bot=prices, found=maybe, mark=maybe)
def test_the_stop_that_results_is_never_looser_than_the_bots_level(
    side: Side, bot: Decimal, found: Decimal | None, mark: Decimal | None
) -> None:
    verdict = judge_level(side, bot, found, mark)
    if verdict is LevelVerdict.KEEP:
        assert found == bot
    elif verdict is LevelVerdict.ADOPT:
        assert found is not None and tighter(side, found, bot)
    elif verdict is LevelVerdict.CLOSE:
        assert mark is not None and crossed(side, bot, mark)
        assert found is None or not tighter(side, found, bot)
    else:  # RESTORE puts back exactly the bot's level, which the mark has not crossed
        assert found is None or tighter(side, bot, found)
        assert mark is None or not crossed(side, bot, mark)
