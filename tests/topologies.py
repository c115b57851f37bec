"""Hand-written model topologies shared by the metric tests."""


def residual_topology(in_channels: int, channels: int, outputs: int) -> dict:
    """input -conv1-> t1 -conv2-> t2 <-identity- t1; t2 -fc (4 columns per channel)-> t3."""
    return {
        "tensors": {"input": in_channels, "t1": channels, "t2": channels, "t3": outputs},
        "edges": [
            {"param": "conv1.weight", "src": "input", "dst": "t1", "kind": "conv", "group": 1},
            {"param": "conv2.weight", "src": "t1", "dst": "t2", "kind": "conv", "group": 1},
            {"identity": True, "src": "t1", "dst": "t2"},
            {"param": "fc.weight", "src": "t2", "dst": "t3", "kind": "linear", "group": 4},
        ],
        "input": "input", "output": "t3",
    }
