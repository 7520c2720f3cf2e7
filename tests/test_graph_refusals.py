"""N2D2 names n2prune declines are refused in one line naming the feature, not as typos."""

import pytest
from test_graph_builder import CONV, FC_TARGET, SP, error_of

from n2prune.errors import UserError
from n2prune.registry import UnknownName

LOCATED_CELL = SP + CONV + "[fc]\nInput=c\nType={}\nNbOutputs=3\n[fc.Target]\n"


@pytest.mark.parametrize("type_name,feature", [
    ("RP", "detection cells"), ("ROIPooling", "detection cells"), ("Anchor", "detection cells"),
    ("LSTM", "recurrent cells"), ("LRN", "LRN"),
])
def test_a_cell_type_of_n2d2_we_decline_names_its_feature(tmp_path, type_name, feature):
    message, path = error_of(tmp_path, LOCATED_CELL.format(type_name), UnknownName)
    assert f"Type={type_name} in [fc] ({path}:" in message
    assert feature in message and "did you mean" not in message


@pytest.mark.parametrize("quantizer", ["SAT", "LSQ"])
def test_n2d2_quantizers_are_refused_at_their_line(tmp_path, quantizer):
    text = SP + CONV + f"QWeight={quantizer}\n" + FC_TARGET
    message, path = error_of(tmp_path, text)
    assert message.startswith(f"{path}:10 [c] QWeight: {quantizer} ")
    assert "not supported" in message


def test_a_detection_target_is_refused(tmp_path):
    message, _ = error_of(tmp_path, SP + CONV + FC_TARGET + "Type=TargetROIs\n", UserError)
    assert "Type=TargetROIs" in message and "detection and matching targets" in message


def test_a_registered_name_cannot_also_be_refused():
    from n2prune.cells import CELL_TYPES
    with pytest.raises(ValueError, match="registered and refused"):
        CELL_TYPES.refuse(("Conv",), "no")


def test_a_declined_type_is_reported_before_a_cell_reading_its_cells(tmp_path):
    # [soft1] reads a cell the declined [rp] would have made.
    text = (SP + "[rp]\nInput=sp\nType=RP\n"
            "[soft1]\nInput=rp_out\nType=Softmax\n[soft1.Target]\n")
    message, path = error_of(tmp_path, text, UnknownName)
    assert message.startswith(f"Type=RP in [rp] ({path}:7): detection cells")


def test_a_declined_type_is_reported_before_errors_in_earlier_cells(tmp_path):
    # The first declined cell in file order, whatever else is wrong before it.
    text = (SP + "[c]\nInput=sp\nType=Conv\nKernelDims=3 3\nNbOutputs=0\n"
            "[fc]\nInput=c\nType=RP\n[lrn]\nInput=fc\nType=LRN\n")
    message, path = error_of(tmp_path, text, UnknownName)
    assert message.startswith(f"Type=RP in [fc] ({path}:12): detection cells")
