"""megatron_toolrl: GRPO for tool-calling LLMs on megatron-core (ToolExpander and Tool Zero modes)."""

__version__ = "0.1.0"
