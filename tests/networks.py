"""INI pieces the small test networks share."""


def classifier_tail(source="fc1", nb_outputs=4):
    """``[fc2]``, an Fc of ``nb_outputs`` on ``source`` (ConfigSection ``solver``),
    then a Softmax with loss and its target."""
    return f"""
[fc2]
Input={source}
Type=Fc
NbOutputs={nb_outputs}
ConfigSection=solver

[softmax]
Input=fc2
Type=Softmax
NbOutputs={nb_outputs}
WithLoss=1

[softmax.Target]
"""
