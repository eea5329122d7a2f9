"""What of the library a checking run may execute: an allow-list.

A checking run (:mod:`autograder.inside.checker`) runs a student's cells and the check cases against a
copy of ``course/`` in which every function and method NOT named here has its body replaced by
a ``raise`` (:mod:`autograder.verdicts.withhold`), nested functions included (the local backward of each
``Value`` operation, say). What stays is what a forward pass, a constructor and the check
machinery need: the exercises' ``run`` side, the layers', losses' and activations' forwards,
parameters and shapes. Every backward, gradient, update, numerical-gradient helper, judge,
reference solution and private helper of ``course.exercises`` is left out, in every
assignment, and so is any function added to the library later, until someone adds it here.

Two things adjust it per assignment (see :func:`autograder.verdicts.withhold.checking_withheld`): an
exercise's ``withheld`` functions (by default its traps: ``07_mlp`` withholds the forward
building blocks its network is made of) are left out too, and the functions an exercise's own
cases are built from (``Exercise.needs``, with their nested functions) are given back to those
checks alone, after every other result of the run has been read.

Nothing here may compute a derivative, a gradient or an update: ``tests/test_withhold.py``
checks every name against the kinds that do, and that every library function of those kinds
is withheld in every assignment's checking runs.
"""

from __future__ import annotations

__all__ = ["ALLOWED"]

#: module -> qualified names (or ``fnmatch`` patterns) of the functions a checking run may
#: execute; ``"package.*"`` counts for every module of the package. ``("*",)`` allows a whole
#: module of the check machinery that runs beside the student's code and computes no gradient
#: of its own (the detector of numerical differentiation).
ALLOWED: dict[str, tuple[str, ...]] = {
    "course.exercises.numerical": ("*",),
    # Every exercise's constructor (the catalogue registers them at import) and its run side
    # (step 2 of an exercise: it calls the student's code on a case; judges and cases stay out).
    "course.exercises.*": ("*Exercise.__init__", "*Exercise.run", "*Exercise.__repr__"),
    "course.activations": (
        "_as_float",
        "binary_step",
        "sigmoid",
        "tanh",
        "relu",
        "leaky_relu",
        "elu",
        "log_softmax",
        "softmax",
    ),
    # The check machinery's run side: what ``run_case`` executes (with its traps) and what
    # carries its result back to the grader. Judging (``judge_case``, ``decode_outputs``,
    # ``unpack_result``, ``known_bugs``) and ``check()`` stay out.
    "course.exercises.checking": ("Verdicts.__repr__",),
    "course.exercises.exercise": (
        "Exercise.__init__",
        "Exercise.withheld",
        "Exercise.__repr__",
    ),
    "course.exercises.gradients": (
        "Swish.__init__",
        "Swish.__repr__",
        "Swish.forward",
        "_ce",
        "NumericalGradientExercise.__init__",
        "NumericalGradientExercise.run",
    ),
    "course.exercises.graphs": (
        "apply",
        "evaluate",
        "_no_gc",
        "_all_nodes",
        "_release",
        "GraphExercise.__init__",
        "GraphExercise.run",
        "GateExercise.__init__",
        "GateExercise.run",
        # The catalogue builds its known-bug classes of Value at import: a class whose
        # operations are the library's (withheld here) but one, whose local backward is a wrong
        # one (withheld too). It computes nothing itself.
        "_value_with",
        "_value_with.<locals>.WrongValue._lift",
        "_value_with.<locals>.method",
        "_value_with.<locals>.method.<locals>.apply_op",
    ),
    "course.exercises.kinds": (
        "away_from",
        "LayerExercise.__init__",
        "LayerExercise._layer",
        "LayerExercise.run",
        "LossExercise.__init__",
        "LossExercise.run",
        "ElementwiseExercise.__init__",
        "ElementwiseExercise.run",
        "_module_of",
        "FunctionExercise.__init__",
        "FunctionExercise._split",
        "FunctionExercise._call",
        "FunctionExercise.run",
        "OptimizerExercise.__init__",
        "OptimizerExercise._trajectory",
        "OptimizerExercise.run",
    ),
    "course.exercises.layers": (
        "_LayerExercise.__init__",
        "_mlp",
    ),
    "course.exercises.losses": (
        "BatchLossExercise.__init__",
        "RegularizerExercise.__init__",
        "RegularizerExercise.run",
    ),
    "course.exercises.mlp": (
        "TwoLayerNetExercise.__init__",
        "TwoLayerNetExercise._network",
        "TwoLayerNetExercise.run",
    ),
    "course.exercises.neurons": (
        "DerivativeExercise.__init__",
        "_derivative_settings",
        "_alpha",
        "ActivationFunctionExercise._call",
    ),
    "course.exercises.optim": (
        "_optimizer_settings",
        "MomentumExercise._trajectory",
        "ScheduleExercise._call",
        "ScheduleExercise.run",
    ),
    "course.exercises.registry": ("register", "get"),
    "course.exercises.running": ("run_case",),
    "course.exercises.transport": ("fingerprint", "encode_outputs", "pack_result"),
    "course.exercises.traps": (
        "_code_key",
        "reference_function",
        "_reference_codes",
        "trapped",
        "trapped.<locals>.hook",
    ),
    "course.graph": (
        "_sigmoid",
        "Value.__init__",
        "Value.__repr__",
        "Value._lift",
        "Value.__add__",
        "Value.__mul__",
        "Value.__pow__",
        "Value.__rpow__",
        "Value.__neg__",
        "Value.__radd__",
        "Value.__sub__",
        "Value.__rsub__",
        "Value.__rmul__",
        "Value.__truediv__",
        "Value.__rtruediv__",
        "Value.exp",
        "Value.tanh",
        "Value.sigmoid",
        "Value.topological_order",
        "Value.zero_grad",
        "Gate.__repr__",
        "AddGate.forward",
        "MulGate.forward",
        "MaxGate.forward",
        "ExpGate.forward",
        "ScaleGate.__init__",
        "ScaleGate.forward",
        "AddConstGate.__init__",
        "AddConstGate.forward",
        "ReciprocalGate.forward",
        "SigmoidGate.forward",
        "Value.relu",
        "Value.log",
    ),
    "course.layers": (
        "_rng",
        "Parameter.__init__",
        "Parameter.zero_grad",
        "Parameter.__repr__",
        "Layer.__call__",
        "Layer.forward",
        "Layer.parameters",
        "Layer.zero_grad",
        "Layer.__repr__",
        "Layer._input",
        "Layer._grad_out",
        "Layer._saved",
        "Linear.__init__",
        "Linear.__repr__",
        "Linear.forward",
        "LinearSigmoid.__init__",
        "LinearSigmoid.__repr__",
        "LinearSigmoid.forward",
        "Maxout.__init__",
        "Maxout.__repr__",
        "Maxout.forward",
        "Sigmoid.__init__",
        "Sigmoid.forward",
        "Tanh.__init__",
        "Tanh.forward",
        "ReLU.__init__",
        "ReLU.forward",
        "LeakyReLU.__init__",
        "LeakyReLU.__repr__",
        "LeakyReLU.forward",
        "ELU.__init__",
        "ELU.__repr__",
        "ELU.forward",
        "Sequential.__init__",
        "Sequential.__repr__",
        "Sequential.forward",
        "Sequential.parameters",
    ),
    "course.losses": (
        "Loss.__call__",
        "Loss.forward",
        "Loss.__repr__",
        "Loss._same_shape",
        "Loss._scores_and_labels",
        "MSE.__init__",
        "MSE.forward",
        "_check_binary_targets",
        "BinaryCrossEntropy.__init__",
        "BinaryCrossEntropy.forward",
        "BinaryCrossEntropyWithLogits.__init__",
        "BinaryCrossEntropyWithLogits.forward",
        "SoftmaxCrossEntropy.__init__",
        "SoftmaxCrossEntropy.forward",
        "MulticlassSVM.__init__",
        "MulticlassSVM.__repr__",
        "MulticlassSVM.forward",
        "Regularizer.__init__",
        "Regularizer.__repr__",
        "Regularizer.value",
        "Regularizer.__call__",
        "L2.value",
        "L1.value",
        "ElasticNet.__init__",
        "ElasticNet.__repr__",
        "ElasticNet.value",
    ),
    "course.network": (
        "TwoLayerNet.__init__",
        "TwoLayerNet.__repr__",
        "TwoLayerNet.forward",
    ),
    "course.neuron": (
        "Neuron.__init__",
        "Neuron.__repr__",
        "Neuron.forward",
        "Perceptron.__init__",
        "Perceptron.forward",
        "LogisticRegression.__init__",
    ),
    "course.optim": (
        "Optimizer.__init__",
        "Optimizer.__repr__",
        "Optimizer.zero_grad",
        "Optimizer._zeros",
        "Momentum.__init__",
        "RMSProp.__init__",
        "Adam.__init__",
        "_Schedule.__init__",
        "StepDecay.__init__",
        "CosineDecay.__init__",
    ),
}
