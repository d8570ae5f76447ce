"""External trainer: builds LightGBM models, compiles them with TL2cgen, writes blink_models."""
