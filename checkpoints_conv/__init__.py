"""Converter CLIs over megatron_toolrl.bridge: hf_to_mcore, mcore_to_hf, gguf_to_hf, verify."""
