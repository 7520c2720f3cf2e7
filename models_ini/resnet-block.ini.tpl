; One basic residual block in N2D2's template language (docs/ini-reference.rst,
; "Templates"), with the variables of N2D2's ResNet_BN-block.ini.tpl: include it
; as [NAME@resnet-block.ini.tpl] with INPUT, NB_FILTERS, STRIDES and, where the
; shape changes, PROJECTION_SHORTCUT=1. It reads the including file's [conv_def]
; and [bn_def] templates and makes NAME_3x3_1 ... NAME_sum, whose output the
; next block takes as its INPUT.

[{{SECTION_NAME}}_3x3_1] conv_def
Input={{INPUT}}
KernelDims=3 3
NbOutputs={{NB_FILTERS}}
Stride={{STRIDES}}
Padding=1

[{{SECTION_NAME}}_bn_1] bn_def
Input={{SECTION_NAME}}_3x3_1
NbOutputs=[{{SECTION_NAME}}_3x3_1]NbOutputs

[{{SECTION_NAME}}_3x3_2] conv_def
Input={{SECTION_NAME}}_bn_1
KernelDims=3 3
NbOutputs={{NB_FILTERS}}
Padding=1

; No ReLU before the sum.
[{{SECTION_NAME}}_bn_2] bn_def
Input={{SECTION_NAME}}_3x3_2
NbOutputs=[{{SECTION_NAME}}_3x3_2]NbOutputs
ActivationFunction=Linear

{% if PROJECTION_SHORTCUT exists %}
; The shortcut changes shape with the block: a strided 1x1 convolution.
[{{SECTION_NAME}}_1x1_proj] conv_def
Input={{INPUT}}
KernelDims=1 1
NbOutputs={{NB_FILTERS}}
Stride={{STRIDES}}

[{{SECTION_NAME}}_bn_proj] bn_def
Input={{SECTION_NAME}}_1x1_proj
NbOutputs=[{{SECTION_NAME}}_1x1_proj]NbOutputs
ActivationFunction=Linear
{% set INPUT %}{{SECTION_NAME}}_bn_proj{% endset %}
{% endif %}

[{{SECTION_NAME}}_sum]
Input={{SECTION_NAME}}_bn_2,{{INPUT}}
Type=ElemWise
NbOutputs={{NB_FILTERS}}
Operation=Sum
ActivationFunction=Rectifier
