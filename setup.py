"""mot-kd: knowledge distillation for one-shot multi-object trackers."""
from setuptools import find_packages, setup

setup(
    name="mot-kd",
    version="0.1.0",
    description="Knowledge distillation for one-shot multi-object trackers (CSTrack/JDE/FairMOT family)",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["mot_kd", "mot_kd.*", "trackers", "trackers.*", "eval", "eval.*",
                                    "configs", "configs.*"]),
    package_data={"configs": ["*.yaml", "*/*.yaml"]},
    include_package_data=True,
    install_requires=[
        "torch==2.14.1",
        "torchvision==0.29.1",
        "ultralytics==8.4.190",
        "ultralytics-thop==2.2.3",
        "motmetrics==1.4.0",
        "lap==0.5.13",
        "cython-bbox==0.1.5",
        "numpy>=2,<3",
        "opencv-python",
        "loguru",
        "scipy==1.17.1",  # eval.assignment loads its private optimize/_lsap extension (public import fallback)
        "threadpoolctl==3.8.0",
        "torch-pruning==1.6.1",
        "tqdm",
        "matplotlib",
        "pyyaml",
        "onnx==1.23.2",  # deployment: python -m mot_kd.export, .onnx weights (mot_kd.models.backends)
        "onnxruntime==1.32.0",
        "onnxslim==0.1.98",
    ],
    extras_require={"test": ["pytest", "trackeval==1.3.0"],
                    "openvino": ["openvino==2026.4.1"],  # --format openvino and .xml weights
                    "ray": ["ray==2.60.0"]},  # python -m mot_kd.bench --launcher ray
)
