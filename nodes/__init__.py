"""The pack's nodes: thin classes that turn widget values into core calls and host calls."""

from .apply_motion_lora import ApplyMotionLoRA
from .camera_motion_clips import CameraMotionClips
from .context_options import ContextOptionsNode
from .host import register_model_folders
from .inject_into_model import InjectIntoModel
from .load_frames import LoadFrames
from .load_motion_module import LoadMotionModule
from .prompt_schedule import PromptSchedule
from .train_motion_lora import TrainMotionLoRA
from .value_schedule import ValueSchedule
from .video_combine import AnimateDiffVideoCombine

register_model_folders()

NODE_CLASS_MAPPINGS = {
    "AnimateDiffLoadMotionModule": LoadMotionModule,
    "AnimateDiffApplyMotionLoRA": ApplyMotionLoRA,
    "AnimateDiffInjectIntoModel": InjectIntoModel,
    "AnimateDiffContextOptions": ContextOptionsNode,
    "AnimateDiffVideoCombine": AnimateDiffVideoCombine,
    "AnimateDiffLoadFrames": LoadFrames,
    "AnimateDiffPromptSchedule": PromptSchedule,
    "AnimateDiffValueSchedule": ValueSchedule,
    "AnimateDiffCameraMotionClips": CameraMotionClips,
    "AnimateDiffTrainMotionLoRA": TrainMotionLoRA,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "AnimateDiffLoadMotionModule": "Load Motion Module",
    "AnimateDiffApplyMotionLoRA": "Apply MotionLoRA",
    "AnimateDiffInjectIntoModel": "Inject into Model",
    "AnimateDiffContextOptions": "Context Options",
    "AnimateDiffVideoCombine": "Video Combine",
    "AnimateDiffLoadFrames": "Load Frames",
    "AnimateDiffPromptSchedule": "Prompt Schedule",
    "AnimateDiffValueSchedule": "Value Schedule",
    "AnimateDiffCameraMotionClips": "Camera Motion Clips",
    "AnimateDiffTrainMotionLoRA": "Train MotionLoRA",
}
