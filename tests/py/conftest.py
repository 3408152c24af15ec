import pytest

import tw


@pytest.fixture(scope="module")
def srv():
    s = tw.Server(allow_cidrs=True)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def admin(srv):
    return tw.admin(srv)


@pytest.fixture(scope="module")
def receiver():
    r = tw.Receiver()
    yield r
    r.close()
