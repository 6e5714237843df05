"""The codec family: encoder, residual VQ, attention decoder with an ISTFT head (torch only)."""

from vqstudio.model.codec import Codec, CodecOutput
from vqstudio.model.quantizer import ResidualVQ

__all__ = ["Codec", "CodecOutput", "ResidualVQ"]
