"""Criminal Law article numbers (data.domains.legal.articles)."""

import pytest

from data.domains.legal.articles import KNOWN_ARTICLES, is_criminal_law_title, parse_article, parse_articles


@pytest.mark.parametrize(
    ("text", "first", "all_"),
    [
        ("第二百六十四条", 264, [264]),
        ("第264条", 264, [264]),
        ("第 264 条", 264, [264]),
        ("第２６４条", 264, [264]),
        ("264", 264, [264]),
        ("第六十七条第三款", 67, [67]),
        ("第二十五条、第二十六条", 25, [25, 26]),
        ("第二十五、二十六条", 25, [25, 26]),
        ("第二百零一条", 201, [201]),
        ("第十条", 10, [10]),
        ("《中华人民共和国刑法》第一百三十三条之一", 133, [133]),
        ("刑法第二百六十四条、第五十二条、第五十三条", 264, [52, 53, 264]),
        ("第264条、第67条、第264条", 264, [67, 264]),
        # Other laws cited in the same sentence are skipped.
        (
            "依照《中华人民共和国刑法》第二百六十四条、第六十七条第三款和《中华人民共和国刑事诉讼法》第二百零一条之规定",
            264,
            [67, 264],
        ),
        ("根据《最高人民法院关于审理盗窃案件具体应用法律若干问题的解释》第一条，刑法第264条", 264, [264]),
        # Bare numbers when there is no 第…条 form.
        ("264, 67", 264, [67, 264]),
        ("264、67", 264, [67, 264]),
        ("264，67，52", 264, [52, 67, 264]),
        ("刑法264条", 264, [264]),
        ("2019年盗窃5000元，判处6个月，适用264", 264, [264]),  # year, money, months ignored
        ("1.5 和 500", None, []),  # decimal; 500 is not a Criminal Law article
        ("第3款", None, []),
        # None.
        ("", None, []),
        ("不知道", None, []),
    ],
)
def test_parse_articles(text: str, first: int | None, all_: list[int]) -> None:
    """First article (parse_article) and all articles, unique and sorted (parse_articles)."""
    assert parse_article(text) == first
    assert parse_articles(text) == all_


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("中华人民共和国刑法", True),
        ("刑法", True),
        ("中华人民共和国刑事诉讼法", False),
        ("中华人民共和国刑法修正案(九)", False),
        ("最高人民法院关于适用〈中华人民共和国刑法〉若干问题的解释", False),
    ],
)
def test_is_criminal_law_title(title: str, expected: bool) -> None:
    """Only the Criminal Law itself scopes articles in."""
    assert is_criminal_law_title(title) is expected


def test_known_articles() -> None:
    """Articles 1..452."""
    assert min(KNOWN_ARTICLES) == 1 and max(KNOWN_ARTICLES) == 452 and len(KNOWN_ARTICLES) == 452
