"""Feature probing decides skips: `@pytest.mark.needs("bridge")`.

`test_bridge_enslaves_a_veth` is also the scenario the matrix boots with
`module_blacklist=bridge` (tests/test_matrix.py): there it must skip, naming
the missing feature, instead of failing half-way through building its lab.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.needs("bridge")
def test_bridge_enslaves_a_veth(lab):
    host = lab.add_namespace("host")
    host.add_bridge("br0")
    host.add_veth("veth1", "ceth1", up=True)
    host.set_link("veth1", master="br0")
    host.set_link("br0", up=True)
    assert host.link("br0").kind == "bridge" and host.link("br0").up
    assert host.link("veth1").master == "br0"


def test_probe_answers_from_the_kernel(nslab_sandbox):
    from nslab.kernel import features

    assert features.missing("veth") is None  # every scenario here builds veths
    with pytest.raises(ValueError, match="unknown feature 'brdge'; known: bridge, veth, vxlan"):
        features.missing("brdge")


@pytest.fixture
def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))

    def runner(*args: str) -> pytest.RunResult:
        return pytester.runpytest_subprocess(
            "-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", *args  # the plugin: its pytest11 entry point
        )

    return runner


def test_missing_feature_skips_naming_it(pytester: pytest.Pytester, run):
    # A link kind this kernel has never heard of stands in for a missing
    # module: the kernel itself refuses it, as it refuses a blacklisted bridge.
    pytester.makeconftest(
        """
from nslab.kernel import features
features.FEATURES["bridge"] = ("creating a bridge", features.payload("nslab-no-such-kind"))
"""
    )
    pytester.makepyfile(
        test_needs="""
import pytest

@pytest.mark.needs("bridge")
def test_wants_a_bridge(lab):
    raise AssertionError("must not run")

def test_without_marker(lab):
    assert lab.add_namespace("a").link("lo").kind == "loopback"
"""
    )
    result = run("-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED*kernel lacks bridge support: creating a bridge failed: ENOTSUP (Operation not supported)*"])


def test_probe_that_fails_for_another_reason_is_an_error_not_a_skip(pytester: pytest.Pytester, run):
    # EEXIST (the peer takes the probe link's own name) stands in for EPERM, ENOMEM and
    # the like: a real error from the kernel that says nothing about bridges.
    pytester.makeconftest(
        """
from nslab.kernel import features
features.FEATURES["bridge"] = ("creating a bridge", features.payload("veth", peer="nsprobe0"))
"""
    )
    pytester.makepyfile(
        test_needs="""
import pytest

@pytest.mark.needs("bridge")
def test_wants_a_bridge(lab):
    raise AssertionError("must not run")
"""
    )
    result = run("-rE")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*probing bridge support (creating a bridge) failed: EEXIST (File exists); that is not the kernel lacking bridge, so the test cannot be skipped*"])
    result.stdout.no_fnmatch_line("*Traceback*")


def test_only_the_kernels_not_supported_means_missing(nslab_sandbox, monkeypatch):
    from nslab.kernel import features

    monkeypatch.setitem(features.FEATURES, "vxlan", ("creating a link of a kind no kernel has", features.payload("nslab-no-such-kind")))
    features.missing.cache_clear()
    try:
        assert features.missing("vxlan") == "creating a link of a kind no kernel has failed: ENOTSUP (Operation not supported)"
        monkeypatch.setitem(features.FEATURES, "vxlan", ("creating a clashing veth", features.payload("veth", peer="nsprobe0")))
        features.missing.cache_clear()
        with pytest.raises(features.FeatureProbeError, match=r"failed: EEXIST \(File exists\); that is not the kernel lacking vxlan"):
            features.missing("vxlan")
    finally:
        features.missing.cache_clear()


def test_unknown_feature_is_a_usage_error(pytester: pytest.Pytester, run):
    pytester.makepyfile(
        test_typo="""
import pytest

@pytest.mark.needs("brige")
def test_x():
    pass
"""
    )
    result = run()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*test_typo.py::test_x: @pytest.mark.needs: unknown feature 'brige'; known: bridge, veth, vxlan*"])
