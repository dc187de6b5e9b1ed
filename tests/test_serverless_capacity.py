"""Serverless base capacity is validated as AWS validates it, before any AWS call.

AWS accepts 4, 8 to 512 in steps of 8, and 512 to 1024 in steps of 32 in five regions only
(Compute capacity for Amazon Redshift Serverless,
https://docs.aws.amazon.com/redshift/latest/mgmt/serverless-capacity.html).
"""

import pytest
from aws_helpers import session, set_cfg

from dwh.iac.settings import EXTENDED_RPU_REGIONS, IacConfig, base_capacity_problem

ALLOWED_EVERYWHERE = [4, 8, 16, 128, 504, 512]
EXTENDED_ONLY = [544, 576, 992, 1024]
NEVER = [5, 7, 12, 100, 513, 520, 536, 1000, 1016]


@pytest.mark.parametrize("rpu", ALLOWED_EVERYWHERE)
@pytest.mark.parametrize("region", ["us-west-2", "ap-southeast-2", "sa-east-1"])
def test_four_and_multiples_of_eight_to_512_are_accepted_in_every_region(rpu, region):
    assert base_capacity_problem(rpu, region) == ""


@pytest.mark.parametrize("rpu", EXTENDED_ONLY)
@pytest.mark.parametrize("region", EXTENDED_RPU_REGIONS)
def test_multiples_of_32_above_512_are_accepted_in_the_extended_regions(rpu, region):
    assert base_capacity_problem(rpu, region) == ""


@pytest.mark.parametrize("rpu", EXTENDED_ONLY)
@pytest.mark.parametrize("region", ["ap-southeast-2", "eu-west-2", "us-west-1"])
def test_above_512_is_refused_elsewhere_naming_the_regions_that_allow_it(rpu, region):
    problem = base_capacity_problem(rpu, region)
    assert problem.startswith(f"must be 4 or a multiple of 8 from 8 to 512 in {region}, got {rpu}")
    assert all(allowed in problem for allowed in EXTENDED_RPU_REGIONS)


@pytest.mark.parametrize("rpu", NEVER)
@pytest.mark.parametrize("region", ["us-east-1", "ap-southeast-2"])
def test_values_off_the_steps_are_refused_in_every_region(rpu, region):
    problem = base_capacity_problem(rpu, region)
    assert problem.startswith("must be 4, a multiple of 8 from 8 to 512, or a multiple of 32 from 512 to 1024")
    assert problem.endswith(f"got {rpu}")


@pytest.mark.parametrize("rpu, region, accepted", [(1024, "us-east-1", True), (1024, "ap-south-1", False)])
def test_the_config_reader_checks_the_capacity_against_aws_region(cfg_path, rpu, region, accepted):
    set_cfg(cfg_path, "AWS", "REGION", region)
    set_cfg(cfg_path, "DWH", "SERVERLESS_BASE_RPU", str(rpu))
    if accepted:
        assert IacConfig(cfg_path).serverless().base_rpu == rpu
    else:
        with pytest.raises(Exception, match=rf"\[DWH\] SERVERLESS_BASE_RPU must be 4 or a multiple of 8 .* {region}"):
            IacConfig(cfg_path).serverless()


@pytest.mark.parametrize("value", ["100", "1000"])
def test_create_refuses_the_capacity_with_one_line_and_exit_2_before_calling_aws(
    moto_aws,
    run,
    cfg_path,
    value,
):
    set_cfg(cfg_path, "DWH", "SERVERLESS_BASE_RPU", value)
    code, _, err = run("create", "--serverless")
    assert code == 2
    assert session().client("iam").list_roles()["Roles"] == []  # nothing was created
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "[DWH] SERVERLESS_BASE_RPU must be 4, a multiple of 8" in lines[0]
    assert f"got {value}" in lines[0] and "Traceback" not in err
